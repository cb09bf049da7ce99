from django.test import Client

from tests.conftest import TEST_PASSWORD


def test_wrong_password_says_so_in_the_words_of_the_form(admin_user):
    response = Client().post("/login/", {"username": "admin@sur.test", "password": "nope"})
    assert response.status_code == 200
    assert "El email o la contraseña no son correctos" in response.content.decode()


def test_right_password_lands_on_the_store_catalog(admin_user):
    response = Client().post(
        "/login/", {"username": "admin@sur.test", "password": TEST_PASSWORD}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/s/sur/catalog/"
